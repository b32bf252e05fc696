// Attention kernels: the selectable implementation switch, the plain attention op (bias given
// whole) and attention with a gathered relative position bias (bias = tableT[:, index]), which
// the "blocked" implementation computes in query blocks so that neither the [heads, N, N] bias
// nor the scores are ever materialised whole. Written here because libtorch 1.13 has no
// memory-efficient CPU attention and libtorch 2.x's SDPA takes only a materialised mask.
#include "common.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdlib>

namespace beitseg {

// "auto", "sdpa", "math" or "blocked". auto: SDPA where libtorch has it (2.1+, measured on the
// H100: bench/results/gpu-2026-11-27-attention-ab-*) on CUDA; on the CPU the blocked kernel
// once the whole fp32 scores [B, heads, N, N] would pass kBlockedMinScoreBytes (the math then
// holds several such matrices at once: bias, scores, probabilities), else the math, which was
// not slower below that size (README "Performance").
static std::string g_attention_impl = "auto";
static constexpr int64_t kBlockedMinScoreBytes = int64_t{1} << 30;

static bool HasSdpa() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  return true;
#else
  return false;
#endif
}

enum class AttentionKernel { kMath, kSdpa, kBlocked };

static AttentionKernel ResolveKernel(const at::Tensor& q, bool blocked_possible) {
  const std::string& impl = g_attention_impl;
  if (impl == "blocked") return blocked_possible ? AttentionKernel::kBlocked : AttentionKernel::kMath;
  if (impl == "math") return AttentionKernel::kMath;
  if (impl == "sdpa") return HasSdpa() ? AttentionKernel::kSdpa : AttentionKernel::kMath;
  if (q.is_cuda()) return HasSdpa() ? AttentionKernel::kSdpa : AttentionKernel::kMath;
  const int64_t score_bytes = q.size(0) * q.size(1) * q.size(2) * q.size(2) * int64_t{4};
  return blocked_possible && score_bytes > kBlockedMinScoreBytes ? AttentionKernel::kBlocked : AttentionKernel::kMath;
}

// softmax(q·kᵀ·scale + bias)·v with the bias (broadcastable to [B, heads, N, N]) given whole.
static at::Tensor WholeBiasAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& bias, double scale, AttentionKernel kernel) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  if (kernel == AttentionKernel::kSdpa) {
    at::Tensor mask = bias.defined() ? bias.to(q.scalar_type()) : at::Tensor();
    return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale);
  }
#else
  (void)kernel;
#endif
  at::Tensor attn = at::matmul(q * scale, k.transpose(-2, -1));
  if (bias.defined()) attn.add_(bias);
  return at::matmul(at::softmax(attn, -1), v);
}

// ---- blocked attention with a gathered bias -------------------------------------------------

// Query rows per block: one block's scores [B, heads, rows, N] in fp32 stay within
// BEITSEG_ATTENTION_BLOCK_KB (default 64 MB: each block costs a fixed number of ATen calls,
// and cache-sized blocks were slower on a busy 2-core machine, README "Performance").
// The variable is read at every call (tests set it to get several blocks on tiny inputs).
static int64_t BlockRows(const at::Tensor& q, int64_t requested) {
  if (requested > 0) return requested;
  const char* env = std::getenv("BEITSEG_ATTENTION_BLOCK_KB");
  const int64_t kb = env && std::atoll(env) > 0 ? std::atoll(env) : int64_t{65536};
  const int64_t per_row = q.size(0) * q.size(1) * q.size(2) * int64_t{4};
  return std::max<int64_t>(1, kb * 1024 / std::max<int64_t>(per_row, 1));
}

// Softmax statistics and gradient sums of bf16/fp16 inputs are kept in fp32.
static at::ScalarType AccType(const at::Tensor& t) {
  const at::ScalarType s = t.scalar_type();
  return s == at::kBFloat16 || s == at::kHalf ? at::kFloat : s;
}

// Scores of query rows [r0, r0 + rows) with the bias added, in the accumulation type: [B, heads, rows, N].
static at::Tensor BlockScores(const at::Tensor& q, const at::Tensor& k_t, const at::Tensor& table_t,
                              const at::Tensor& index, double scale, int64_t r0, int64_t rows) {
  const int64_t heads = q.size(1), n = k_t.size(-1);
  at::Tensor s = at::matmul(q.narrow(2, r0, rows) * scale, k_t);
  s = s.to(AccType(s));
  at::Tensor bias = table_t.index_select(1, index.narrow(0, r0, rows).reshape({-1})).view({1, heads, rows, n});
  return s.add_(bias);
}

struct BlockedForward {
  at::Tensor out;
  at::Tensor lse;  // [B, heads, N] fp32, only when asked for
};

static BlockedForward BlockedAttentionForward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              const at::Tensor& table_t, const at::Tensor& index, double scale,
                                              int64_t block_rows, bool with_lse) {
  const int64_t n = q.size(2);
  const int64_t rows = BlockRows(q, block_rows);
  at::Tensor k_t = k.transpose(-2, -1);
  BlockedForward r;
  r.out = at::empty({q.size(0), q.size(1), n, v.size(-1)}, q.options());
  if (with_lse) r.lse = at::empty({q.size(0), q.size(1), n}, q.options().dtype(AccType(q)));
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    const int64_t len = std::min(rows, n - r0);
    at::Tensor s = BlockScores(q, k_t, table_t, index, scale, r0, len);
    if (with_lse) {
      at::Tensor lse = at::logsumexp(s, -1, true);
      r.lse.narrow(2, r0, len).copy_(lse.squeeze(-1));
      s.sub_(lse).exp_();
    } else {
      s = at::softmax(s, -1);
    }
    r.out.narrow(2, r0, len).copy_(at::matmul(s.to(v.scalar_type()), v));
  }
  return r;
}

// Autograd: saves q, k, v, the transposed table, the index and the per-row logsumexp; the
// backward recomputes each block's probabilities from them (flash-attention's recipe).
struct BlockedAttentionFunction : public torch::autograd::Function<BlockedAttentionFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& table_t, const at::Tensor& index, double scale,
                            int64_t block_rows) {
    BlockedForward f = BlockedAttentionForward(q, k, v, table_t, index, scale, block_rows, true);
    ctx->save_for_backward({q, k, v, table_t, index, f.out, f.lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["block_rows"] = block_rows;
    return f.out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &table_t = saved[3], &index = saved[4];
    const at::Tensor &out = saved[5], &lse = saved[6];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t rows = BlockRows(q, ctx->saved_data["block_rows"].toInt());
    at::Tensor d_out = grads[0].contiguous();
    const int64_t n = q.size(2);
    const at::ScalarType acc = AccType(q);
    const auto acc_options = q.options().dtype(acc);
    // D_i = Σ_j P_ij dP_ij = rowsum(dO ∘ O)
    at::Tensor delta = (d_out.to(acc) * out.to(acc)).sum(-1, true);
    at::Tensor k_t = k.transpose(-2, -1), v_t = v.transpose(-2, -1);
    at::Tensor dq = at::empty(q.sizes(), acc_options), dk = at::zeros(k.sizes(), acc_options);
    at::Tensor dv = at::zeros(v.sizes(), acc_options);
    at::Tensor d_table = at::zeros(table_t.sizes(), table_t.options().dtype(AccType(table_t)));
    const at::ScalarType compute = q.scalar_type();
    for (int64_t r0 = 0; r0 < n; r0 += rows) {
      const int64_t len = std::min(rows, n - r0);
      at::Tensor p =
          BlockScores(q, k_t, table_t, index, scale, r0, len).sub_(lse.narrow(2, r0, len).unsqueeze(-1)).exp_();
      at::Tensor d_out_b = d_out.narrow(2, r0, len);
      dv.add_(at::matmul(p.to(compute).transpose(-2, -1), d_out_b));
      at::Tensor dp = at::matmul(d_out_b, v_t).to(acc);
      at::Tensor ds = p.mul_(dp.sub_(delta.narrow(2, r0, len)));  // dS = P ∘ (dP − D)
      d_table.index_add_(1, index.narrow(0, r0, len).reshape({-1}),
                         ds.sum(0).reshape({ds.size(1), -1}).to(d_table.scalar_type()));
      at::Tensor ds_c = ds.to(compute);
      dq.narrow(2, r0, len).copy_(at::matmul(ds_c, k)).mul_(scale);
      dk.add_(at::matmul(ds_c.transpose(-2, -1), q.narrow(2, r0, len)), scale);
    }
    return {dq.to(q.scalar_type()),
            dk.to(k.scalar_type()),
            dv.to(v.scalar_type()),
            d_table.to(table_t.scalar_type()),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

static at::Tensor GatheredBiasAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& table_t, const at::Tensor& index, double scale,
                                        int64_t block_rows, AttentionKernel kernel) {
  const int64_t heads = q.size(1), n = q.size(2);
  if (q.dim() != 4 || k.sizes() != q.sizes() || v.dim() != 4 || v.size(2) != n) {
    throw std::invalid_argument("attention: q, k, v must be [B, heads, N, d] with equal sizes");
  }
  if (table_t.dim() != 2 || table_t.size(0) != heads) {
    throw std::invalid_argument("attention: the bias table must be [heads, T] with heads = " + std::to_string(heads));
  }
  if (index.dim() != 2 || index.size(0) != n || index.size(1) != n || index.scalar_type() != at::kLong) {
    throw std::invalid_argument("attention: the bias index must be int64 [N, N] with N = " + std::to_string(n));
  }
  if (kernel != AttentionKernel::kBlocked) {
    at::Tensor bias = table_t.index_select(1, index.reshape({-1})).view({1, heads, n, n});
    return WholeBiasAttention(q, k, v, bias, scale, kernel);
  }
  const bool needs_grad = at::GradMode::is_enabled() &&
                          (q.requires_grad() || k.requires_grad() || v.requires_grad() || table_t.requires_grad());
  if (needs_grad) return BlockedAttentionFunction::apply(q, k, v, table_t, index, scale, block_rows);
  return BlockedAttentionForward(q, k, v, table_t, index, scale, block_rows, false).out;
}

// softmax(q·kᵀ·scale + bias)·v for q, k, v [B, heads, N, d] and an additive bias broadcastable
// to [B, heads, N, N] (math or SDPA: a whole bias is given, so there is nothing to block).
BEITSEG_OP(attention) {
  const at::Tensor& q = ArgTensor(info, 0);
  std::optional<at::Tensor> bias = ArgOptTensor(info, 3);
  return TensorHandle::Wrap(env,
                            WholeBiasAttention(q, ArgTensor(info, 1), ArgTensor(info, 2), bias ? *bias : at::Tensor(),
                                               ArgDouble(info, 4), ResolveKernel(q, false)));
}

// (q, k, v, tableT[heads, T], index[N, N] int64, scale, blockRows?) ->
// softmax(q·kᵀ·scale + tableT[:, index])·v. blockRows (blocked kernel only; 0 or absent = from
// the cache budget) is for tests that need several blocks on tiny inputs.
BEITSEG_OP(gatheredBiasAttention) {
  const at::Tensor& q = ArgTensor(info, 0);
  std::optional<int64_t> rows = ArgOptInt(info, 6);
  return TensorHandle::Wrap(
      env, GatheredBiasAttention(q, ArgTensor(info, 1), ArgTensor(info, 2), ArgTensor(info, 3), ArgTensor(info, 4),
                                 ArgDouble(info, 5), rows.value_or(0), ResolveKernel(q, true)));
}

// attentionImpl(name?) -> the implementation in force ("auto", "sdpa", "math" or "blocked").
BEITSEG_OP(attentionImpl) {
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    std::string name = ArgString(info, 0);
    if (name != "auto" && name != "sdpa" && name != "math" && name != "blocked") {
      throw std::invalid_argument("attentionImpl: expected auto, sdpa, math or blocked, got '" + name + "'");
    }
    g_attention_impl = name;
  }
  return Napi::String::New(env, g_attention_impl);
}

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, attention);
  BEITSEG_EXPORT(exports, gatheredBiasAttention);
  BEITSEG_EXPORT(exports, attentionImpl);
}

}  // namespace beitseg
