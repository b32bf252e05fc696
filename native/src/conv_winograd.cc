// 3x3 convolutions on the CPU by oneDNN's Winograd algorithm (F(4x4, 3x3)) for inference.
//
// Why by hand: ATen's CPU convolution asks oneDNN for the direct algorithm only. UPerHead's
// 3x3 convolutions (fpn_bottleneck: 3072 -> 768 channels at 160x160 for a 640 window) are most
// of BEiT-UperNet's FLOPs, and the Winograd kernels do the same convolution with about a quarter
// of the multiplications: 3.3-4x faster here for that layer, with results within 5e-6 of the
// direct algorithm's (README "Performance"). No library offers this from libtorch.
//
// Used by conv2d (ops_nn.cc) for float32 CPU tensors, 3x3 kernels, stride 1, no dilation or
// groups, when no autograd graph is being recorded and CPU autocast is off; the weights are
// reordered per call (as ATen does for the direct algorithm), so nothing is cached that a
// training step could make stale. Where oneDNN has no Winograd kernel for the CPU (it needs
// AVX-512) or the shape, the caller falls back to ATen.
//
// Needs oneDNN's headers and the libdnnl libtorch itself links (Debian's libtorch-dev with
// libdnnl-dev); the build defines BEITSEG_WITH_DNNL then.
#include "common.h"

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#ifdef BEITSEG_WITH_DNNL
#include <dnnl.hpp>
#endif

namespace beitseg {

namespace {

enum class ConvAlgorithm { kAuto, kDirect, kWinograd };

ConvAlgorithm AlgorithmFromEnv() {
  const char* v = std::getenv("BEITSEG_CONV_ALGO");
  const std::string name = v ? v : "auto";
  return name == "direct"     ? ConvAlgorithm::kDirect
         : name == "winograd" ? ConvAlgorithm::kWinograd
                              : ConvAlgorithm::kAuto;
}

ConvAlgorithm g_algorithm = AlgorithmFromEnv();

constexpr int64_t kInChunk = 768;  // most input channels per Winograd pass
constexpr int64_t kMinChunk = 64;  // fewest, before the direct algorithm is the better deal

// The most scratchpad one Winograd call may take (BEITSEG_WINOGRAD_SCRATCH_MB, default 512).
size_t ScratchBudgetBytes() {
  const char* v = std::getenv("BEITSEG_WINOGRAD_SCRATCH_MB");
  const unsigned long long mb = v ? std::strtoull(v, nullptr, 10) : 512;
  return static_cast<size_t>(std::min<unsigned long long>(mb, 1ull << 30)) << 20;
}

#ifdef BEITSEG_WITH_DNNL
constexpr bool kWithDnnl = true;
#else
constexpr bool kWithDnnl = false;
#endif

const char* AlgorithmName(ConvAlgorithm a) {
  return a == ConvAlgorithm::kDirect ? "direct" : a == ConvAlgorithm::kWinograd ? "winograd" : "auto";
}

#ifdef BEITSEG_WITH_DNNL
dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::dims Dims(const at::Tensor& t) {
  return dnnl::memory::dims(t.sizes().begin(), t.sizes().end());
}
#endif

}  // namespace

std::optional<at::Tensor> WinogradConv2d(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                                         at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                         int64_t groups) {
#ifdef BEITSEG_WITH_DNNL
  if (g_algorithm == ConvAlgorithm::kDirect) return std::nullopt;
  const bool shape_ok = x.dim() == 4 && w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3 && groups == 1 &&
                        stride.size() == 2 && stride[0] == 1 && stride[1] == 1 && dilation.size() == 2 &&
                        dilation[0] == 1 && dilation[1] == 1 && padding.size() == 2 && x.size(1) == w.size(1);
  const bool dtype_ok = x.is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
                        (!b || !b->defined() || b->scalar_type() == at::kFloat);
  const bool needs_grad = c10::GradMode::is_enabled() &&
                          (x.requires_grad() || w.requires_grad() || (b && b->defined() && b->requires_grad()));
  if (!shape_ok || !dtype_ok || needs_grad || at::autocast::is_cpu_enabled() || x.numel() == 0) return std::nullopt;
  // auto: the layers where the transforms pay for themselves (measured on BEiT-UperNet's head)
  if (g_algorithm == ConvAlgorithm::kAuto && (x.size(1) < 64 || w.size(0) < 64)) return std::nullopt;

  using dnnl::memory;
  const at::Tensor src = x.contiguous(), weights = w.contiguous();
  const bool has_bias = b && b->defined();
  const at::Tensor bias = has_bias ? b->contiguous() : at::Tensor();
  const int64_t out_h = x.size(2) + 2 * padding[0] - 2, out_w = x.size(3) + 2 * padding[1] - 2;
  if (out_h <= 0 || out_w <= 0) return std::nullopt;
  at::Tensor out = at::empty({x.size(0), w.size(0), out_h, out_w}, x.options());

  auto plain = [](const at::Tensor& t, memory::format_tag tag) {
    return memory::desc(Dims(t), memory::data_type::f32, tag);
  };
  auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, memory::format_tag::any); };
  dnnl::engine& engine = CpuEngine();
  dnnl::stream stream(engine);
  auto user = [&](const memory::desc& d, const at::Tensor& t) { return memory(d, engine, t.data_ptr()); };
  // oneDNN's own buffers (reordered layouts, the Winograd scratchpad) come from libtorch's
  // allocator: beitseg's caching allocator hands back blocks already paged in, where fresh
  // allocations of this size paid first-touch page faults on every call
  auto buffer = [&](const memory::desc& d, std::vector<at::Tensor>& keep) {
    keep.push_back(at::empty({static_cast<int64_t>(d.get_size())}, x.options().dtype(at::kByte)));
    return memory(d, engine, keep.back().data_ptr());
  };
  const memory::desc dst_plain = plain(out, memory::format_tag::nchw);
  memory dst_user = user(dst_plain, out), dst_m;
  std::vector<at::Tensor> dst_buffer;

  // forward_training keeps the weights in a blocked layout and transforms them inside the
  // kernel: cheaper than reordering them into the Winograd domain on every call. Passes after the
  // first add into the output (a sum post-op).
  auto describe = [&](int64_t in_channels, bool first) -> std::optional<dnnl::convolution_forward::primitive_desc> {
    try {
      const memory::desc bias_any = has_bias && first ? any(Dims(bias)) : memory::desc();
      const memory::dims in_dims{x.size(0), in_channels, x.size(2), x.size(3)};
      const memory::dims w_dims{w.size(0), in_channels, 3, 3};
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_winograd,
                                           any(in_dims), any(w_dims), bias_any, any(Dims(out)), {1, 1},
                                           {padding[0], padding[1]}, {padding[0], padding[1]});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (!first) {
        dnnl::post_ops sum;
        sum.append_sum(1.f);
        attr.set_post_ops(sum);
      }
      return dnnl::convolution_forward::primitive_desc(desc, attr, engine);
    } catch (const dnnl::error&) {
      return std::nullopt;  // no Winograd kernel for this CPU or shape
    }
  };

  // The Winograd domain is 4x the size of the data, so the input channels go through in passes
  // (at most kInChunk each, fewer while the scratchpad would pass its budget): UPerHead's
  // 3072-channel fpn_bottleneck needed 1.2 GB more than the direct algorithm in one pass. Where
  // even a pass of kMinChunk channels passes the budget (the output side alone can: 768 channels
  // at 320x320 take 708 MB), ATen's direct convolution runs instead.
  const int64_t channels = x.size(1);
  const size_t budget = ScratchBudgetBytes();
  int64_t chunk = std::min(channels, kInChunk);
  for (;; chunk /= 2) {
    const auto pd = describe(chunk, /*first=*/true);
    if (!pd) return std::nullopt;
    if (pd->scratchpad_desc().get_size() <= budget) break;
    if (chunk / 2 < kMinChunk) return std::nullopt;
  }
  const int64_t passes = (channels + chunk - 1) / chunk;
  chunk = (channels + passes - 1) / passes;
  for (int64_t c0 = 0; c0 < channels; c0 += chunk) {
    const int64_t c1 = std::min(channels, c0 + chunk);
    const bool first = c0 == 0;
    const at::Tensor xs = passes == 1 ? src : src.narrow(1, c0, c1 - c0).contiguous();
    const at::Tensor ws = passes == 1 ? weights : weights.narrow(1, c0, c1 - c0).contiguous();
    const auto described = describe(c1 - c0, first);
    if (!described) return std::nullopt;
    const dnnl::convolution_forward::primitive_desc& pd = *described;
    if (first)
      dst_m = pd.dst_desc() == dst_plain ? dst_user : buffer(pd.dst_desc(), dst_buffer);
    else if (pd.dst_desc() != dst_m.get_desc())
      return std::nullopt;
    std::vector<at::Tensor> pass_buffers;
    auto as = [&](const memory::desc& want, memory given) {
      if (want == given.get_desc()) return given;
      memory converted = buffer(want, pass_buffers);
      dnnl::reorder(given, converted).execute(stream, given, converted);
      return converted;
    };
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, as(pd.src_desc(), user(plain(xs, memory::format_tag::nchw), xs))},
        {DNNL_ARG_WEIGHTS, as(pd.weights_desc(), user(plain(ws, memory::format_tag::oihw), ws))},
        {DNNL_ARG_DST, dst_m},
        {DNNL_ARG_SCRATCHPAD, buffer(pd.scratchpad_desc(), pass_buffers)}};
    if (has_bias && first) args.emplace(DNNL_ARG_BIAS, user(plain(bias, memory::format_tag::x), bias));
    dnnl::convolution_forward(pd).execute(stream, args);
    stream.wait();  // before this pass's buffers go
  }
  if (dst_m != dst_user) {
    dnnl::reorder(dst_m, dst_user).execute(stream, dst_m, dst_user);
    stream.wait();
  }
  return out;
#else
  return std::nullopt;
#endif
}

// convAlgorithm(name?) -> the 3x3 convolution algorithm for CPU inference in force: "auto"
// (Winograd where oneDNN has it and the layer has at least 64 channels in and out), "direct"
// (ATen's), "winograd" (wherever oneDNN has it). Also set by BEITSEG_CONV_ALGO.
BEITSEG_OP(convAlgorithm) {
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    const std::string name = ArgString(info, 0);
    if (name == "auto")
      g_algorithm = ConvAlgorithm::kAuto;
    else if (name == "direct")
      g_algorithm = ConvAlgorithm::kDirect;
    else if (name == "winograd")
      g_algorithm = ConvAlgorithm::kWinograd;
    else
      throw std::invalid_argument("convAlgorithm: expected auto, direct or winograd, got '" + name + "'");
  }
  return Napi::String::New(env, AlgorithmName(g_algorithm));
}

// winogradAvailable(): whether this build has oneDNN's Winograd convolution (the CPU may still lack it).
BEITSEG_OP(winogradAvailable) {
  return Napi::Boolean::New(env, kWithDnnl);
}

void RegisterConvWinograd(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, convAlgorithm);
  BEITSEG_EXPORT(exports, winogradAvailable);
}

}  // namespace beitseg
