// Tensors to and from JS memory, tensor metadata, and factory functions.
#include "common.h"

#include <cstring>
#include <mutex>

namespace beitseg {

// Tensors made over a JS buffer keep a reference to it. libtorch may free such a tensor on
// any thread, where N-API cannot be called, so the references to release are queued and
// dropped on the JS thread at the next call that creates tensors from buffers.
static std::mutex g_release_mutex;
static std::vector<napi_ref> g_release_queue;

static void DrainReleases(Napi::Env env) {
  std::vector<napi_ref> refs;
  {
    std::lock_guard<std::mutex> lock(g_release_mutex);
    refs.swap(g_release_queue);
  }
  for (napi_ref r : refs) napi_delete_reference(env, r);
}

static size_t ElementSize(at::ScalarType t) {
  return c10::elementSize(t);
}

// fromBuffer(view: TypedArray|Buffer, dtype, shape, copy): a CPU tensor over the view's bytes.
// Without copy the tensor shares the JS memory (writes are visible both ways).
BEITSEG_OP(fromBuffer) {
  DrainReleases(env);
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: argument 0 must be a TypedArray or Buffer");
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  at::ScalarType dtype = ParseDType(ArgString(info, 1));
  std::vector<int64_t> shape = ArgIntList(info, 2);
  bool copy = ArgBool(info, 3);
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("fromBuffer: negative dimension in shape");
    n *= s;
  }
  size_t need = static_cast<size_t>(n) * ElementSize(dtype);
  if (view.ByteLength() != need) {
    throw std::invalid_argument("fromBuffer: " + std::to_string(view.ByteLength()) + " bytes given, shape [" +
                                c10::Join(", ", shape) + "] of " + DTypeName(dtype) + " needs " + std::to_string(need));
  }
  uint8_t* data = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  auto opts = at::TensorOptions().dtype(dtype);
  if (copy || need == 0 || reinterpret_cast<uintptr_t>(data) % ElementSize(dtype) != 0) {
    at::Tensor t = at::empty(shape, opts);
    if (need) std::memcpy(t.data_ptr(), data, need);
    return TensorHandle::Wrap(env, t);
  }
  napi_ref ref;
  napi_create_reference(env, view, 1, &ref);
  at::Tensor t = at::from_blob(
      data, shape,
      [ref](void*) {
        std::lock_guard<std::mutex> lock(g_release_mutex);
        g_release_queue.push_back(ref);
      },
      opts);
  return TensorHandle::Wrap(env, t);
}

static at::Tensor CpuContiguous(const at::Tensor& t) {
  return t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous();
}

// toBuffer(t): a new ArrayBuffer with a copy of the elements (row-major).
BEITSEG_OP(toBuffer) {
  at::Tensor t = CpuContiguous(ArgTensor(info, 0).detach());
  size_t n = t.nbytes();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

// dataView(t): an ArrayBuffer over the tensor's own memory without a copy; it keeps the
// storage alive until the buffer is collected. Non-contiguous or device tensors are first
// made contiguous on the CPU (that one copy is unavoidable).
BEITSEG_OP(dataView) {
  at::Tensor t = CpuContiguous(ArgTensor(info, 0).detach());
  size_t n = t.nbytes();
  if (n == 0) return Napi::ArrayBuffer::New(env, 0);
  auto* keep = new at::Tensor(t);
  return Napi::ArrayBuffer::New(
      env, t.data_ptr(), n, [](Napi::Env, void*, at::Tensor* hint) { delete hint; }, keep);
}

// copyToBuffer(t, view): copy elements into a preallocated TypedArray (no allocation).
BEITSEG_OP(copyToBuffer) {
  at::Tensor t = CpuContiguous(ArgTensor(info, 0).detach());
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(env, "copyToBuffer: argument 1 must be a TypedArray");
  Napi::TypedArray view = info[1].As<Napi::TypedArray>();
  if (view.ByteLength() != t.nbytes()) {
    throw std::invalid_argument("copyToBuffer: tensor has " + std::to_string(t.nbytes()) + " bytes, buffer " +
                                std::to_string(view.ByteLength()));
  }
  std::memcpy(static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset(), t.data_ptr(), t.nbytes());
  return env.Undefined();
}

BEITSEG_OP(item) {
  const at::Tensor& t = ArgTensor(info, 0);
  if (t.numel() != 1)
    throw std::invalid_argument("item: tensor with " + std::to_string(t.numel()) + " elements, expected 1");
  return Napi::Number::New(env, t.item().toDouble());
}

BEITSEG_OP(shape) {
  const at::Tensor& t = ArgTensor(info, 0);
  Napi::Array arr = Napi::Array::New(env, t.dim());
  for (int64_t d = 0; d < t.dim(); ++d)
    arr.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(t.size(d))));
  return arr;
}

BEITSEG_OP(dtype) {
  return Napi::String::New(env, DTypeName(ArgTensor(info, 0).scalar_type()));
}
BEITSEG_OP(device) {
  return Napi::String::New(env, ArgTensor(info, 0).device().str());
}
BEITSEG_OP(numel) {
  return Napi::Number::New(env, static_cast<double>(ArgTensor(info, 0).numel()));
}

BEITSEG_OP(zeros) {
  return TensorHandle::Wrap(env, at::zeros(ArgIntList(info, 0), ArgOptions(info, 1, 2)));
}
BEITSEG_OP(ones) {
  return TensorHandle::Wrap(env, at::ones(ArgIntList(info, 0), ArgOptions(info, 1, 2)));
}
BEITSEG_OP(empty) {
  return TensorHandle::Wrap(env, at::empty(ArgIntList(info, 0), ArgOptions(info, 1, 2)));
}
BEITSEG_OP(full) {
  return TensorHandle::Wrap(env, at::full(ArgIntList(info, 0), ArgDouble(info, 1), ArgOptions(info, 2, 3)));
}
// arange(start, end, step, dtype, device)
BEITSEG_OP(arange) {
  return TensorHandle::Wrap(
      env, at::arange(ArgDouble(info, 0), ArgDouble(info, 1), ArgDouble(info, 2), ArgOptions(info, 3, 4)));
}
// Random tensors draw from the default generator of their device (see manualSeed).
BEITSEG_OP(randn) {
  return TensorHandle::Wrap(env, at::randn(ArgIntList(info, 0), ArgOptions(info, 1, 2)));
}
// rand(shape, low, high, dtype, device): uniform on [low, high)
BEITSEG_OP(rand) {
  at::Tensor t = at::empty(ArgIntList(info, 0), ArgOptions(info, 3, 4));
  t.uniform_(ArgDouble(info, 1), ArgDouble(info, 2));
  return TensorHandle::Wrap(env, t);
}
// bernoulli(shape, p, dtype, device): 1 with probability p.
BEITSEG_OP(bernoulli) {
  at::Tensor t = at::empty(ArgIntList(info, 0), ArgOptions(info, 2, 3));
  t.bernoulli_(ArgDouble(info, 1));
  return TensorHandle::Wrap(env, t);
}

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, fromBuffer);
  BEITSEG_EXPORT(exports, toBuffer);
  BEITSEG_EXPORT(exports, dataView);
  BEITSEG_EXPORT(exports, copyToBuffer);
  BEITSEG_EXPORT(exports, item);
  BEITSEG_EXPORT(exports, shape);
  BEITSEG_EXPORT(exports, dtype);
  BEITSEG_EXPORT(exports, device);
  BEITSEG_EXPORT(exports, numel);
  BEITSEG_EXPORT(exports, zeros);
  BEITSEG_EXPORT(exports, ones);
  BEITSEG_EXPORT(exports, empty);
  BEITSEG_EXPORT(exports, full);
  BEITSEG_EXPORT(exports, arange);
  BEITSEG_EXPORT(exports, randn);
  BEITSEG_EXPORT(exports, rand);
  BEITSEG_EXPORT(exports, bernoulli);
}

}  // namespace beitseg
