// int8 linear layers through libtorch's own quantized engines (oneDNN, FBGEMM or QNNPACK,
// whichever this libtorch has): weights quantised per output channel (symmetric int8) and
// packed once by quantized::linear_prepack; activations quantised dynamically per call
// (quantized::linear_dynamic's kernel, the one torch.ao.quantization.quantize_dynamic uses).
#include "common.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

namespace beitseg {

// Preferred engine order: oneDNN (AMX/VNNI int8 on recent Intel CPUs), FBGEMM, QNNPACK.
static at::QEngine PickEngine() {
  const auto& engines = at::globalContext().supportedQEngines();
  for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::FBGEMM, at::QEngine::QNNPACK}) {
    if (std::find(engines.begin(), engines.end(), e) != engines.end()) return e;
  }
  throw std::runtime_error("int8: this libtorch has no quantized engine (oneDNN, FBGEMM or QNNPACK)");
}

static std::string EngineName(at::QEngine e) {
  switch (e) {
    case at::QEngine::ONEDNN:
      return "onednn";
    case at::QEngine::FBGEMM:
      return "fbgemm";
    case at::QEngine::QNNPACK:
      return "qnnpack";
    default:
      return "none";
  }
}

struct PackedLinear {
  c10::intrusive_ptr<LinearPackedParamsBase> params;
  int64_t in_features;
  int64_t out_features;
};

// Symmetric per-channel int8 of weight [out, in]: scale_j = max|W_j| / 127 (zero points 0),
// the weight observer torch.ao.quantization.per_channel_dynamic_qconfig uses.
static at::Tensor QuantizePerChannel(const at::Tensor& weight) {
  at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  at::Tensor scales = w.abs().amax({1}).div_(127.0).clamp_min_(1e-8).to(at::kDouble);
  at::Tensor zero_points = at::zeros({w.size(0)}, w.options().dtype(at::kLong));
  return at::quantize_per_channel(w, scales, zero_points, 0, at::kQInt8);
}

// (weight[out, in], bias?) -> an opaque packed int8 linear (freed by the GC).
BEITSEG_OP(int8LinearPrepack) {
  const at::Tensor& weight = ArgTensor(info, 0);
  std::optional<at::Tensor> bias = ArgOptTensor(info, 1);
  if (weight.dim() != 2 || !weight.device().is_cpu())
    throw std::invalid_argument("int8LinearPrepack: weight must be a 2-D CPU tensor [out, in]");
  if (bias && (bias->dim() != 1 || bias->size(0) != weight.size(0))) {
    throw std::invalid_argument("int8LinearPrepack: bias must be [" + std::to_string(weight.size(0)) + "]");
  }
  at::globalContext().setQEngine(PickEngine());
  static auto prepack = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>)>();
  c10::optional<at::Tensor> b;
  if (bias) b = bias->detach().to(at::kFloat).contiguous();
  auto* packed = new PackedLinear{prepack.call(QuantizePerChannel(weight), b), weight.size(1), weight.size(0)};
  return Napi::External<PackedLinear>::New(env, packed, [](Napi::Env, PackedLinear* p) { delete p; });
}

// (x[..., in], packed, reduceRange) -> x·Wᵀ + b in fp32 with x quantised to uint8 per call.
// reduceRange uses 7-bit activations (no saturation on CPUs without VNNI; what PyTorch's
// dynamic Linear passes for FBGEMM).
BEITSEG_OP(int8Linear) {
  const at::Tensor& x = ArgTensor(info, 0);
  if (!info[1].IsExternal())
    throw Napi::TypeError::New(env, "int8Linear: argument 1 must be a packed linear (int8LinearPrepack)");
  const PackedLinear* packed = info[1].As<Napi::External<PackedLinear>>().Data();
  const bool reduce_range = ArgBool(info, 2);
  if (x.dim() < 1 || x.size(-1) != packed->in_features) {
    throw std::invalid_argument("int8Linear: input's last dimension must be " + std::to_string(packed->in_features));
  }
  if (at::GradMode::is_enabled() && x.requires_grad())
    throw std::invalid_argument("int8Linear is for inference: run it without gradients");
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = packed->out_features;
  at::Tensor x2 = x.to(at::kFloat).reshape({-1, packed->in_features}).contiguous();
  return TensorHandle::Wrap(env, packed->params->apply_dynamic(x2, reduce_range).view(out_shape));
}

// -> { engine: the engine int8 layers use, supported: every engine of this libtorch }.
BEITSEG_OP(quantizedEngines) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array supported = Napi::Array::New(env);
  uint32_t i = 0;
  for (at::QEngine e : at::globalContext().supportedQEngines()) supported.Set(i++, EngineName(e));
  out.Set("supported", supported);
  const auto& engines = at::globalContext().supportedQEngines();
  const bool any =
      std::any_of(engines.begin(), engines.end(), [](at::QEngine e) { return e != at::QEngine::NoQEngine; });
  out.Set("engine", any ? EngineName(PickEngine()) : "none");
  return out;
}

void RegisterQuantized(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, int8LinearPrepack);
  BEITSEG_EXPORT(exports, int8Linear);
  BEITSEG_EXPORT(exports, quantizedEngines);
}

}  // namespace beitseg
