// Shared helpers of the beitseg addon: the tensor handle type, argument parsing and the
// error guard that turns every libtorch exception into a JS Error.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>
#include <torch/version.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace beitseg {

// A JS object owning one at::Tensor. Disposal is explicit (dispose()) or left to the GC
// finalizer; native bytes are reported to V8 so the GC sees the real memory pressure.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  static bool Is(const Napi::Value& v);
  // The tensor of a live handle; throws a JS-visible error for anything else.
  static const at::Tensor& Get(const Napi::Value& v, const char* what);
  // Handles holding a tensor: neither disposed nor collected.
  static int64_t LiveCount() { return live_count_; }

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  at::Tensor tensor;

 private:
  void Release(Napi::Env env);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  int64_t reported_bytes_ = 0;
  bool released_ = false;
  bool counted_ = false;                    // made by Wrap and counted in live_count_
  static std::atomic<int64_t> live_count_;  // summed over the main and worker threads
};

// Runs `body`, converting libtorch (c10::Error) and std exceptions into JS Errors carrying
// libtorch's message without its C++ backtrace.
Napi::Value Guard(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);

// Argument parsing. Each throws a TypeError naming the argument position on bad input.
const at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i);
std::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t i);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i);
std::optional<int64_t> ArgOptInt(const Napi::CallbackInfo& info, size_t i);
double ArgDouble(const Napi::CallbackInfo& info, size_t i);
std::optional<double> ArgOptDouble(const Napi::CallbackInfo& info, size_t i);
bool ArgBool(const Napi::CallbackInfo& info, size_t i);
std::string ArgString(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i);
bool ArgIsNumber(const Napi::CallbackInfo& info, size_t i);

at::ScalarType ParseDType(const std::string& name);
std::string DTypeName(at::ScalarType t);
at::Device ParseDevice(const std::string& name);
at::TensorOptions ArgOptions(const Napi::CallbackInfo& info, size_t dtype_i, size_t device_i);

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

// Registration of each op family (one source file each).
void RegisterMath(Napi::Env env, Napi::Object exports);
void RegisterNN(Napi::Env env, Napi::Object exports);
void RegisterAttention(Napi::Env env, Napi::Object exports);
void RegisterQuantized(Napi::Env env, Napi::Object exports);
void RegisterShape(Napi::Env env, Napi::Object exports);
void RegisterRuntime(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);
void RegisterOptim(Napi::Env env, Napi::Object exports);
void RegisterDistributed(Napi::Env env, Napi::Object exports);
void RegisterCudaGraph(Napi::Env env, Napi::Object exports);
void RegisterConvWinograd(Napi::Env env, Napi::Object exports);

// conv2d by oneDNN's Winograd algorithm where it applies (conv_winograd.cc); nullopt: use ATen.
std::optional<at::Tensor> WinogradConv2d(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                                         at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                         int64_t groups);
void InstallCpuAllocator(Napi::Env env, Napi::Object exports);

// Whether oneDNN can run bf16 convolutions here (it needs AVX-512 at least; runtime.cc). ATen
// decides from the CPU alone (cpuinfo: AVX-512 BW/VL/DQ) whether a bf16 convolution goes to
// oneDNN, so with oneDNN capped below AVX-512 (ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU) it
// fails there ("could not create a primitive descriptor iterator") instead of taking ATen's own
// kernels, which an AVX2-only CPU runs.
bool OnednnRunsBf16();

}  // namespace beitseg

// Defines a binding `name` whose body returns a Napi::Value; `info` and `env` are in scope.
#define BEITSEG_OP(name)                                                            \
  static Napi::Value name##_body(const Napi::CallbackInfo& info, Napi::Env env);    \
  static Napi::Value name(const Napi::CallbackInfo& info) {                         \
    return ::beitseg::Guard(info, [&]() { return name##_body(info, info.Env()); }); \
  }                                                                                 \
  static Napi::Value name##_body(const Napi::CallbackInfo& info, Napi::Env env)

#define BEITSEG_EXPORT(exports, name) exports.Set(#name, Napi::Function::New(env, name, #name))
