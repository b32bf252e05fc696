// Tensor handle lifetime, error mapping and argument parsing.
#include "common.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace beitseg {

// Whether optional argument i was given (present, neither undefined nor null). Kept per file: a
// change to common.h rebuilds every object.
static bool Given(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

std::atomic<int64_t> TensorHandle::live_count_{0};

Napi::Object TensorHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "TensorHandle",
                                   {
                                       InstanceMethod<&TensorHandle::Dispose>("dispose"),
                                       InstanceMethod<&TensorHandle::IsDisposed>("isDisposed"),
                                   });
  // Per environment (the main thread and each worker thread load the addon into their own
  // environment): a class from one cannot construct or recognise handles in another.
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(cls)));
  exports.Set("TensorHandle", cls);
  return exports;
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() {
  // Reached from the GC finalizer when a handle was never disposed: give back what was
  // reported (adjusting external memory touches V8's counters only, not JS).
  // The C call, whose status is ignored: while a worker thread's environment is torn down
  // (process.exit during a forward pass) the wrapper would throw from this noexcept destructor.
  if (!released_ && reported_bytes_ != 0) {
    int64_t ignored = 0;
    napi_adjust_external_memory(Env(), -reported_bytes_, &ignored);
  }
  if (counted_) --live_count_;
}

// Only storages this handle allocated are reported, so views do not count their base twice.
static int64_t OwnedBytes(const at::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || !t.has_storage()) return 0;
  const auto& storage = t.storage();
  if (storage.use_count() != 1) return 0;
  return static_cast<int64_t>(storage.nbytes());
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  Napi::Object obj = env.GetInstanceData<Napi::FunctionReference>()->New({});
  TensorHandle* self = Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
  self->reported_bytes_ = OwnedBytes(t);
  self->tensor = std::move(t);
  self->counted_ = true;
  ++live_count_;
  if (self->reported_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, self->reported_bytes_);
  return obj;
}

bool TensorHandle::Is(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(v.Env().GetInstanceData<Napi::FunctionReference>()->Value());
}

const at::Tensor& TensorHandle::Get(const Napi::Value& v, const char* what) {
  if (!Is(v)) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a tensor");
  TensorHandle* self = Napi::ObjectWrap<TensorHandle>::Unwrap(v.As<Napi::Object>());
  if (self->released_) throw Napi::Error::New(v.Env(), std::string(what) + " is a disposed tensor");
  return self->tensor;
}

void TensorHandle::Release(Napi::Env env) {
  if (released_) return;
  released_ = true;
  if (counted_) --live_count_;
  counted_ = false;
  tensor = at::Tensor();
  if (reported_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
  reported_bytes_ = 0;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), released_);
}

Napi::Value Guard(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

static void NeedArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) {
    throw Napi::TypeError::New(info.Env(), "missing argument " + std::to_string(i));
  }
}

const at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  std::string what = "argument " + std::to_string(i);
  return TensorHandle::Get(info[i], what.c_str());
}

std::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return ArgTensor(info, i);
}

std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an array of tensors");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    std::string what = "argument " + std::to_string(i) + "[" + std::to_string(k) + "]";
    out.push_back(TensorHandle::Get(arr.Get(k), what.c_str()));
  }
  return out;
}

bool ArgIsNumber(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsNumber();
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an integer");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::TypeError::New(info.Env(),
                               "argument " + std::to_string(i) + " must be an integer, got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

std::optional<int64_t> ArgOptInt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return ArgInt(info, i);
}

double ArgDouble(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

std::optional<double> ArgOptDouble(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return ArgDouble(info, i);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsBoolean())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i) {
  NeedArg(info, i);
  if (!info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an array of integers");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.5;
    if (!(std::trunc(d) == d && std::fabs(d) < 9.2e18)) {  // rejects fractions, NaN, ±Infinity
      throw Napi::TypeError::New(info.Env(),
                                 "argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be an integer");
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

at::ScalarType ParseDType(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float64") return at::kDouble;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + name +
                              "' (supported: float32, float16, bfloat16, float64, int64, int32, uint8, bool)");
}

std::string DTypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kDouble:
      return "float64";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return std::string(c10::toString(t));
  }
}

at::Device ParseDevice(const std::string& name) {
  if (name != "cpu" && name.rfind("cuda", 0) != 0) {
    throw std::invalid_argument("unknown device '" + name + "' (supported: cpu, cuda, cuda:N)");
  }
  return at::Device(name);
}

at::TensorOptions ArgOptions(const Napi::CallbackInfo& info, size_t dtype_i, size_t device_i) {
  at::TensorOptions opts;
  opts = opts.dtype(ParseDType(ArgString(info, dtype_i)));
  if (Given(info, device_i)) opts = opts.device(ParseDevice(ArgString(info, device_i)));
  return opts;
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); ++k) arr.Set(static_cast<uint32_t>(k), TensorHandle::Wrap(env, ts[k]));
  return arr;
}

}  // namespace beitseg
