// Optimizer steps over whole parameter lists in one call: the AdamW update of a parameter
// group and the AMP gradient unscale/check. Per-parameter calls from JS cost ~10 kernel
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
    if (!info[k].IsArray())
      throw std::invalid_argument("adamwStep: argument " + std::to_string(k) + " must be an array of numbers");
    Napi::Array a = info[k].As<Napi::Array>();
    auto& dst = k == 4 ? step_sizes : bc2_sqrts;
    for (uint32_t j = 0; j < a.Length(); j++) dst.push_back(a.Get(j).As<Napi::Number>().DoubleValue());
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

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, adamwStep);
  BEITSEG_EXPORT(exports, ampUnscale);
}

}  // namespace beitseg
