// Optimizer steps over whole parameter lists in one call: the AdamW update of a parameter
// group and the AMP gradient unscale/check, each in two forms: the eager one (settings from the
// host, the inf/NaN verdict returned to it) and a capturable one for CUDA-graphed training
// steps, whose settings, loss scale and verdict stay in device tensors (no host synchronisation,
// which a capture forbids; src/engine/graphed_train_step.ts). Per-parameter calls from JS cost ~10 kernel
// launches and as many N-API round trips per tensor; on a GPU that launch overhead is exposed
// (the step follows the loss scaler's synchronisation). libtorch's _foreach_ ops run the same
// arithmetic as one multi-tensor kernel per stage on CUDA, and as the per-tensor ops on CPU.
#include "common.h"

#include <c10/core/GradMode.h>

#include <cmath>

namespace beitseg {

// adamwStep(params, grads, expAvgs, expAvgSqs, stepSizes, biasCorrection2Sqrts, decay,
//           beta1, beta2, eps) — one group; per parameter i:
//   p ← p·decay; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//   p ← p − stepSizes[i] · m / (√v / bc2sqrt[i] + ε)
// the operation order of torch.optim.AdamW (so results agree with the per-tensor path).
BEITSEG_OP(adamwStep) {
  std::vector<at::Tensor> params = ArgTensorList(info, 0);
  std::vector<at::Tensor> grads = ArgTensorList(info, 1);
  std::vector<at::Tensor> exp_avgs = ArgTensorList(info, 2);
  std::vector<at::Tensor> exp_avg_sqs = ArgTensorList(info, 3);
  std::vector<double> step_sizes, bc2_sqrts;
  for (size_t k : {4, 5}) {
    if (k >= info.Length() || !info[k].IsArray())
      throw Napi::TypeError::New(env, "adamwStep: argument " + std::to_string(k) + " must be an array of numbers");
    Napi::Array a = info[k].As<Napi::Array>();
    auto& dst = k == 4 ? step_sizes : bc2_sqrts;
    for (uint32_t j = 0; j < a.Length(); j++) {
      Napi::Value v = a.Get(j);
      if (!v.IsNumber())
        throw Napi::TypeError::New(env, "adamwStep: argument " + std::to_string(k) + " must be an array of numbers");
      dst.push_back(v.As<Napi::Number>().DoubleValue());
    }
  }
  const double decay = ArgDouble(info, 6), beta1 = ArgDouble(info, 7), beta2 = ArgDouble(info, 8),
               eps = ArgDouble(info, 9);
  const size_t n = params.size();
  if (grads.size() != n || exp_avgs.size() != n || exp_avg_sqs.size() != n || step_sizes.size() != n ||
      bc2_sqrts.size() != n) {
    throw std::invalid_argument("adamwStep: params, grads, moments and step lists differ in length");
  }
  if (n == 0) return env.Undefined();
  c10::NoGradGuard no_grad;
  std::vector<at::Scalar> neg_steps, bc2;
  for (size_t i = 0; i < n; i++) {
    neg_steps.emplace_back(-step_sizes[i]);
    bc2.emplace_back(bc2_sqrts[i]);
  }
  if (decay != 1.0) at::_foreach_mul_(params, decay);
  at::_foreach_mul_(exp_avgs, beta1);
  at::_foreach_add_(exp_avgs, grads, 1 - beta1);
  at::_foreach_mul_(exp_avg_sqs, beta2);
  at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
  std::vector<at::Tensor> denom = at::_foreach_sqrt(exp_avg_sqs);
  at::_foreach_div_(denom, bc2);
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(params, exp_avgs, denom, neg_steps);
  return env.Undefined();
}

// ampUnscale(grads, invScale) -> true when every gradient is finite. Gradients are multiplied
// by invScale in place (as GradScaler.unscale_). On CUDA: libtorch's fused check-and-unscale
// kernel and one synchronisation; elsewhere the same per tensor.
BEITSEG_OP(ampUnscale) {
  std::vector<at::Tensor> grads = ArgTensorList(info, 0);
  const double inv_scale = ArgDouble(info, 1);
  if (grads.empty()) return Napi::Boolean::New(env, true);
  c10::NoGradGuard no_grad;
  const at::Device device = grads[0].device();
  bool same_device = true;
  for (const auto& g : grads) same_device = same_device && g.device() == device;
  if (device.is_cuda() && same_device) {
    auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
    at::Tensor found_inf = at::zeros({1}, opts);
    at::Tensor inv = at::full({1}, inv_scale, opts);
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv);
    return Napi::Boolean::New(env, found_inf.item<float>() == 0.0f);
  }
  bool finite = true;
  for (auto& g : grads) {
    g.mul_(static_cast<float>(inv_scale));
    if (finite && !at::isfinite(g).all().item<bool>()) finite = false;
  }
  return Napi::Boolean::New(env, finite);
}

// ampUnscaleDevice(grads, foundInf, invScale): multiplies every gradient by invScale (a
// one-element device tensor) in place and sets foundInf (a one-element float tensor, not
// cleared here) to 1 where some gradient is not finite, without reading anything back. On CUDA
// libtorch's fused check-and-unscale kernel; elsewhere the same composed per tensor.
BEITSEG_OP(ampUnscaleDevice) {
  std::vector<at::Tensor> grads = ArgTensorList(info, 0);
  at::Tensor found_inf = ArgTensor(info, 1);
  const at::Tensor& inv_scale = ArgTensor(info, 2);
  if (found_inf.numel() != 1 || inv_scale.numel() != 1 || found_inf.scalar_type() != at::kFloat ||
      inv_scale.scalar_type() != at::kFloat) {
    throw std::invalid_argument("ampUnscaleDevice: foundInf and invScale must be one-element float32 tensors");
  }
  if (grads.empty()) return env.Undefined();
  c10::NoGradGuard no_grad;
  bool same_device = found_inf.device() == inv_scale.device();
  for (const auto& g : grads) same_device = same_device && g.device() == found_inf.device();
  if (!same_device) throw std::invalid_argument("ampUnscaleDevice: gradients, foundInf and invScale differ in device");
  if (found_inf.is_cuda()) {
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
    return env.Undefined();
  }
  for (auto& g : grads) {
    g.mul_(inv_scale);
    found_inf.copy_(at::maximum(found_inf, at::logical_not(at::isfinite(g)).any().to(at::kFloat)));
  }
  return env.Undefined();
}

// adamwStepDevice(params, grads, expAvgs, expAvgSqs, settings, skipSettings, foundInf, eps): the
// AdamW update of adamwStep with every per-step number read from the float32 device tensor
// `settings` = [β1, 1−β1, β2, 1−β2, then per parameter: decay, −stepSize, √(1−β2^t)], which the
// host rewrites before each replay. With foundInf (one-element float, 1 = some gradient was not
// finite) the gradients are zeroed and `skipSettings` (the same layout: 1, 0, 1, 0, per parameter
// 1, 0, 1) replaces `settings`, so a skipped step leaves parameters and moments exactly as they
// were, decided on the device. The arithmetic and its order are adamwStep's.
BEITSEG_OP(adamwStepDevice) {
  std::vector<at::Tensor> params = ArgTensorList(info, 0);
  std::vector<at::Tensor> grads = ArgTensorList(info, 1);
  std::vector<at::Tensor> exp_avgs = ArgTensorList(info, 2);
  std::vector<at::Tensor> exp_avg_sqs = ArgTensorList(info, 3);
  const at::Tensor& settings = ArgTensor(info, 4);
  const std::optional<at::Tensor> skip_settings = ArgOptTensor(info, 5);
  const std::optional<at::Tensor> found_inf = ArgOptTensor(info, 6);
  const double eps = ArgDouble(info, 7);
  const size_t n = params.size();
  if (grads.size() != n || exp_avgs.size() != n || exp_avg_sqs.size() != n)
    throw std::invalid_argument("adamwStepDevice: params, grads and moments differ in length");
  const int64_t expected = 4 + 3 * static_cast<int64_t>(n);
  if (settings.dim() != 1 || settings.size(0) != expected || settings.scalar_type() != at::kFloat)
    throw std::invalid_argument("adamwStepDevice: settings must be a float32 vector of 4 + 3 * params.length");
  if (found_inf.has_value() != skip_settings.has_value())
    throw std::invalid_argument("adamwStepDevice: skipSettings and foundInf come together");
  if (skip_settings && !skip_settings->is_same_size(settings))
    throw std::invalid_argument("adamwStepDevice: skipSettings must have the shape of settings");
  if (n == 0) return env.Undefined();
  c10::NoGradGuard no_grad;
  at::Tensor s = settings;
  std::optional<at::Tensor> skip;
  if (found_inf) {
    skip = found_inf->reshape({}).ne(0);
    s = at::where(*skip, *skip_settings, settings);
  }
  const at::Tensor beta1 = s.select(0, 0), one_minus_beta1 = s.select(0, 1), beta2 = s.select(0, 2),
                   one_minus_beta2 = s.select(0, 3);
  for (size_t i = 0; i < n; i++) {
    const int64_t row = 4 + 3 * static_cast<int64_t>(i);
    at::Tensor g = grads[i];
    if (skip) g = g.masked_fill(*skip, 0);
    params[i].mul_(s.select(0, row));
    exp_avgs[i].mul_(beta1);
    exp_avgs[i].addcmul_(g, one_minus_beta1);
    exp_avg_sqs[i].mul_(beta2);
    exp_avg_sqs[i].addcmul_(g.mul(one_minus_beta2), g);
    at::Tensor denom = exp_avg_sqs[i].sqrt();
    denom.div_(s.select(0, row + 2));
    denom.add_(eps);
    // p + (−stepSize · m) / denom: the rounding order of ATen's CPU addcdiv, which adamwStep runs
    params[i].add_(exp_avgs[i].mul(s.select(0, row + 1)).div_(denom));
  }
  return env.Undefined();
}

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, adamwStep);
  BEITSEG_EXPORT(exports, ampUnscale);
  BEITSEG_EXPORT(exports, ampUnscaleDevice);
  BEITSEG_EXPORT(exports, adamwStepDevice);
}

}  // namespace beitseg
