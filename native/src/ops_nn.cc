// Neural-network ops: convolutions, norms, activations, losses, dropout, resampling, pooling
// (attention: ops_attention.cc).
#include "common.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

namespace beitseg {

static at::Tensor OrUndefined(const std::optional<at::Tensor>& t) {
  return t ? *t : at::Tensor();
}

namespace {
// ATen's own kernels for a CPU bf16 convolution where oneDNN cannot run bf16 (OnednnRunsBf16):
// what an AVX2-only CPU runs. Switches oneDNN off for this call only (setAutocast does it for
// the whole bf16 autocast scope; this covers bf16 modules run outside it, the bf16 decode head).
class AtenBf16Conv {
 public:
  explicit AtenBf16Conv(const at::Tensor& x) {
    const bool bf16 = x.scalar_type() == at::kBFloat16 ||
                      (at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16);
    active_ = x.is_cpu() && bf16 && at::globalContext().userEnabledMkldnn() && !OnednnRunsBf16();
    if (active_) at::globalContext().setUserEnabledMkldnn(false);
  }
  ~AtenBf16Conv() {
    if (active_) at::globalContext().setUserEnabledMkldnn(true);
  }
  AtenBf16Conv(const AtenBf16Conv&) = delete;
  AtenBf16Conv& operator=(const AtenBf16Conv&) = delete;

 private:
  bool active_;
};
}  // namespace

BEITSEG_OP(conv2d) {
  const at::Tensor& x = ArgTensor(info, 0);
  const at::Tensor& w = ArgTensor(info, 1);
  const std::optional<at::Tensor> b = ArgOptTensor(info, 2);
  const std::vector<int64_t> stride = ArgIntList(info, 3), padding = ArgIntList(info, 4),
                             dilation = ArgIntList(info, 5);
  const int64_t groups = ArgInt(info, 6);
  if (auto y = WinogradConv2d(x, w, b, stride, padding, dilation, groups)) return TensorHandle::Wrap(env, *y);
  AtenBf16Conv aten_bf16(x);
  return TensorHandle::Wrap(env, at::conv2d(x, w, OrUndefined(b), stride, padding, dilation, groups));
}

// (input, weight[in, out/groups, kh, kw], bias?, stride, padding, outputPadding, groups, dilation)
BEITSEG_OP(convTranspose2d) {
  AtenBf16Conv aten_bf16(ArgTensor(info, 0));
  return TensorHandle::Wrap(
      env, at::conv_transpose2d(ArgTensor(info, 0), ArgTensor(info, 1), OrUndefined(ArgOptTensor(info, 2)),
                                ArgIntList(info, 3), ArgIntList(info, 4), ArgIntList(info, 5), ArgInt(info, 6),
                                ArgIntList(info, 7)));
}

BEITSEG_OP(layerNorm) {
  return TensorHandle::Wrap(env,
                            at::layer_norm(ArgTensor(info, 0), ArgIntList(info, 1), OrUndefined(ArgOptTensor(info, 2)),
                                           OrUndefined(ArgOptTensor(info, 3)), ArgDouble(info, 4)));
}

// (x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps). In training mode
// the running statistics are updated in place exactly as torch.nn.BatchNorm2d does.
BEITSEG_OP(batchNorm) {
  return TensorHandle::Wrap(
      env, at::batch_norm(ArgTensor(info, 0), OrUndefined(ArgOptTensor(info, 1)), OrUndefined(ArgOptTensor(info, 2)),
                          OrUndefined(ArgOptTensor(info, 3)), OrUndefined(ArgOptTensor(info, 4)), ArgBool(info, 5),
                          ArgDouble(info, 6), ArgDouble(info, 7), /*cudnn_enabled=*/true));
}

BEITSEG_OP(gelu) {
  return TensorHandle::Wrap(env, at::gelu(ArgTensor(info, 0), "none"));
}
BEITSEG_OP(relu) {
  return TensorHandle::Wrap(env, at::relu(ArgTensor(info, 0)));
}
BEITSEG_OP(softmax) {
  return TensorHandle::Wrap(env, at::softmax(ArgTensor(info, 0), ArgInt(info, 1)));
}
BEITSEG_OP(logSoftmax) {
  return TensorHandle::Wrap(env, at::log_softmax(ArgTensor(info, 0), ArgInt(info, 1)));
}

static int64_t ParseReduction(const std::string& r) {
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw std::invalid_argument("unknown reduction '" + r + "' (none, mean, sum)");
}

// (logits[N, C, ...], target[N, ...] int64, weight?, reduction, ignoreIndex)
BEITSEG_OP(crossEntropy) {
  return TensorHandle::Wrap(
      env, at::cross_entropy_loss(ArgTensor(info, 0), ArgTensor(info, 1), OrUndefined(ArgOptTensor(info, 2)),
                                  ParseReduction(ArgString(info, 3)), ArgInt(info, 4), 0.0));
}

BEITSEG_OP(dropout) {
  return TensorHandle::Wrap(env, at::dropout(ArgTensor(info, 0), ArgDouble(info, 1), ArgBool(info, 2)));
}
// Channel dropout (nn.Dropout2d): whole feature maps are zeroed.
BEITSEG_OP(featureDropout) {
  return TensorHandle::Wrap(env, at::feature_dropout(ArgTensor(info, 0), ArgDouble(info, 1), ArgBool(info, 2)));
}

// F.interpolate(size=..., mode='bilinear', antialias=False): scale factors are not passed,
// so the kernel derives them from the sizes exactly as PyTorch does for `size=`.
BEITSEG_OP(interpolateBilinear) {
  return TensorHandle::Wrap(env, at::upsample_bilinear2d(ArgTensor(info, 0), ArgIntList(info, 1), ArgBool(info, 2),
                                                         c10::nullopt, c10::nullopt));
}

BEITSEG_OP(interpolateNearest) {
  return TensorHandle::Wrap(
      env, at::upsample_nearest2d(ArgTensor(info, 0), ArgIntList(info, 1), c10::nullopt, c10::nullopt));
}

BEITSEG_OP(adaptiveAvgPool2d) {
  return TensorHandle::Wrap(env, at::adaptive_avg_pool2d(ArgTensor(info, 0), ArgIntList(info, 1)));
}

// (x, kernel, stride, padding, dilation, ceilMode)
BEITSEG_OP(maxPool2d) {
  return TensorHandle::Wrap(env, at::max_pool2d(ArgTensor(info, 0), ArgIntList(info, 1), ArgIntList(info, 2),
                                                ArgIntList(info, 3), ArgIntList(info, 4), ArgBool(info, 5)));
}

void RegisterNN(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, conv2d);
  BEITSEG_EXPORT(exports, convTranspose2d);
  BEITSEG_EXPORT(exports, layerNorm);
  BEITSEG_EXPORT(exports, batchNorm);
  BEITSEG_EXPORT(exports, gelu);
  BEITSEG_EXPORT(exports, relu);
  BEITSEG_EXPORT(exports, softmax);
  BEITSEG_EXPORT(exports, logSoftmax);
  BEITSEG_EXPORT(exports, crossEntropy);
  BEITSEG_EXPORT(exports, dropout);
  BEITSEG_EXPORT(exports, featureDropout);
  BEITSEG_EXPORT(exports, interpolateBilinear);
  BEITSEG_EXPORT(exports, interpolateNearest);
  BEITSEG_EXPORT(exports, adaptiveAvgPool2d);
  BEITSEG_EXPORT(exports, maxPool2d);
}

}  // namespace beitseg
