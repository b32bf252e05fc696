// Elementwise arithmetic, comparisons, reductions, matmul and in-place updates.
#include "common.h"

namespace beitseg {

// Whether optional argument i was given (present, neither undefined nor null). Kept per file: a
// change to common.h rebuilds every object.
static bool Given(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

// Binary ops accept a tensor or a JS number as the second operand.
#define BINARY(name, expr)                    \
  BEITSEG_OP(name) {                          \
    const at::Tensor& a = ArgTensor(info, 0); \
    if (ArgIsNumber(info, 1)) {               \
      at::Scalar b = ArgDouble(info, 1);      \
      return TensorHandle::Wrap(env, expr);   \
    }                                         \
    const at::Tensor& b = ArgTensor(info, 1); \
    return TensorHandle::Wrap(env, expr);     \
  }

BINARY(add, at::add(a, b))
BINARY(sub, at::sub(a, b))
BINARY(mul, at::mul(a, b))
BINARY(div, at::div(a, b))
BINARY(pow, at::pow(a, b))
BINARY(eq, at::eq(a, b))
BINARY(ne, at::ne(a, b))
BINARY(lt, at::lt(a, b))
BINARY(le, at::le(a, b))
BINARY(gt, at::gt(a, b))
BINARY(ge, at::ge(a, b))
BINARY(remainder, at::remainder(a, b))
#undef BINARY

BEITSEG_OP(maximum) {
  return TensorHandle::Wrap(env, at::maximum(ArgTensor(info, 0), ArgTensor(info, 1)));
}
BEITSEG_OP(minimum) {
  return TensorHandle::Wrap(env, at::minimum(ArgTensor(info, 0), ArgTensor(info, 1)));
}
BEITSEG_OP(logicalAnd) {
  return TensorHandle::Wrap(env, at::logical_and(ArgTensor(info, 0), ArgTensor(info, 1)));
}
BEITSEG_OP(logicalNot) {
  return TensorHandle::Wrap(env, at::logical_not(ArgTensor(info, 0)));
}

#define UNARY(name, fn)                                     \
  BEITSEG_OP(name) {                                        \
    return TensorHandle::Wrap(env, fn(ArgTensor(info, 0))); \
  }
UNARY(neg, at::neg)
UNARY(abs, at::abs)
UNARY(sqrt, at::sqrt)
UNARY(rsqrt, at::rsqrt)
UNARY(exp, at::exp)
UNARY(log, at::log)
UNARY(sign, at::sign)
UNARY(floor, at::floor)
UNARY(sigmoid, at::sigmoid)
UNARY(tanh, at::tanh)
UNARY(isfinite, at::isfinite)
#undef UNARY

BEITSEG_OP(clamp) {
  std::optional<double> lo = ArgOptDouble(info, 1), hi = ArgOptDouble(info, 2);
  c10::optional<at::Scalar> min, max;
  if (lo) min = *lo;
  if (hi) max = *hi;
  return TensorHandle::Wrap(env, at::clamp(ArgTensor(info, 0), min, max));
}

BEITSEG_OP(where) {
  const at::Tensor& cond = ArgTensor(info, 0);
  if (ArgIsNumber(info, 1) && ArgIsNumber(info, 2)) {
    // Two numbers: a float32 result (torch.where(cond, 1.0, 0.0) gives the default dtype).
    at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat).device(cond.device());
    return TensorHandle::Wrap(
        env, at::where(cond, at::scalar_tensor(ArgDouble(info, 1), f32), at::scalar_tensor(ArgDouble(info, 2), f32)));
  }
  if (ArgIsNumber(info, 1) || ArgIsNumber(info, 2)) {
    // Scalars are materialised as 0-d tensors of the other operand's dtype.
    at::Tensor a =
        ArgIsNumber(info, 1) ? at::scalar_tensor(ArgDouble(info, 1), ArgTensor(info, 2).options()) : ArgTensor(info, 1);
    at::Tensor b = ArgIsNumber(info, 2) ? at::scalar_tensor(ArgDouble(info, 2), a.options()) : ArgTensor(info, 2);
    return TensorHandle::Wrap(env, at::where(cond, a, b));
  }
  return TensorHandle::Wrap(env, at::where(cond, ArgTensor(info, 1), ArgTensor(info, 2)));
}

BEITSEG_OP(matmul) {
  return TensorHandle::Wrap(env, at::matmul(ArgTensor(info, 0), ArgTensor(info, 1)));
}

BEITSEG_OP(linear) {
  std::optional<at::Tensor> bias = ArgOptTensor(info, 2);
  return TensorHandle::Wrap(env, at::linear(ArgTensor(info, 0), ArgTensor(info, 1), bias ? *bias : at::Tensor()));
}

// Reductions: dims = null reduces everything.
#define REDUCE(name, fn)                                                  \
  BEITSEG_OP(name) {                                                      \
    const at::Tensor& a = ArgTensor(info, 0);                             \
    if (info.Length() < 2 || info[1].IsNull() || info[1].IsUndefined()) { \
      return TensorHandle::Wrap(env, fn(a));                              \
    }                                                                     \
    bool keep = Given(info, 2) && ArgBool(info, 2);                       \
    return TensorHandle::Wrap(env, fn(a, ArgIntList(info, 1), keep));     \
  }
REDUCE(sum, at::sum)
REDUCE(mean, at::mean)
#undef REDUCE

// max/min over one dim return [values, indices]; without a dim the global extreme.
BEITSEG_OP(max) {
  const at::Tensor& a = ArgTensor(info, 0);
  if (info.Length() < 2 || info[1].IsNull() || info[1].IsUndefined()) return TensorHandle::Wrap(env, at::max(a));
  auto r = at::max(a, ArgInt(info, 1), info.Length() > 2 && ArgBool(info, 2));
  return WrapList(env, {std::get<0>(r), std::get<1>(r)});
}

BEITSEG_OP(min) {
  const at::Tensor& a = ArgTensor(info, 0);
  if (info.Length() < 2 || info[1].IsNull() || info[1].IsUndefined()) return TensorHandle::Wrap(env, at::min(a));
  auto r = at::min(a, ArgInt(info, 1), info.Length() > 2 && ArgBool(info, 2));
  return WrapList(env, {std::get<0>(r), std::get<1>(r)});
}

BEITSEG_OP(argmax) {
  std::optional<int64_t> dim = ArgOptInt(info, 1);
  bool keep = Given(info, 2) && ArgBool(info, 2);
  return TensorHandle::Wrap(env,
                            at::argmax(ArgTensor(info, 0), dim ? c10::optional<int64_t>(*dim) : c10::nullopt, keep));
}

BEITSEG_OP(bincount) {
  return TensorHandle::Wrap(env, at::bincount(ArgTensor(info, 0), {}, ArgInt(info, 1)));
}

// In-place updates used by optimizers and accumulators (autograd must be off for leaves).
BEITSEG_OP(addInplace) {
  at::Tensor a = ArgTensor(info, 0);
  double alpha = info.Length() > 2 ? ArgDouble(info, 2) : 1.0;
  if (ArgIsNumber(info, 1))
    a.add_(at::Scalar(ArgDouble(info, 1)), alpha);
  else
    a.add_(ArgTensor(info, 1), alpha);
  return env.Undefined();
}

BEITSEG_OP(mulInplace) {
  at::Tensor a = ArgTensor(info, 0);
  if (ArgIsNumber(info, 1))
    a.mul_(ArgDouble(info, 1));
  else
    a.mul_(ArgTensor(info, 1));
  return env.Undefined();
}

BEITSEG_OP(addcmulInplace) {
  at::Tensor a = ArgTensor(info, 0);
  a.addcmul_(ArgTensor(info, 1), ArgTensor(info, 2), ArgDouble(info, 3));
  return env.Undefined();
}

BEITSEG_OP(addcdivInplace) {
  at::Tensor a = ArgTensor(info, 0);
  a.addcdiv_(ArgTensor(info, 1), ArgTensor(info, 2), ArgDouble(info, 3));
  return env.Undefined();
}

BEITSEG_OP(copyInplace) {
  at::Tensor a = ArgTensor(info, 0);
  a.copy_(ArgTensor(info, 1));
  return env.Undefined();
}

BEITSEG_OP(fillInplace) {
  at::Tensor a = ArgTensor(info, 0);
  a.fill_(ArgDouble(info, 1));
  return env.Undefined();
}

void RegisterMath(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, add);
  BEITSEG_EXPORT(exports, sub);
  BEITSEG_EXPORT(exports, mul);
  BEITSEG_EXPORT(exports, div);
  BEITSEG_EXPORT(exports, pow);
  BEITSEG_EXPORT(exports, remainder);
  BEITSEG_EXPORT(exports, eq);
  BEITSEG_EXPORT(exports, ne);
  BEITSEG_EXPORT(exports, lt);
  BEITSEG_EXPORT(exports, le);
  BEITSEG_EXPORT(exports, gt);
  BEITSEG_EXPORT(exports, ge);
  BEITSEG_EXPORT(exports, maximum);
  BEITSEG_EXPORT(exports, minimum);
  BEITSEG_EXPORT(exports, logicalAnd);
  BEITSEG_EXPORT(exports, logicalNot);
  BEITSEG_EXPORT(exports, neg);
  BEITSEG_EXPORT(exports, abs);
  BEITSEG_EXPORT(exports, sqrt);
  BEITSEG_EXPORT(exports, rsqrt);
  BEITSEG_EXPORT(exports, exp);
  BEITSEG_EXPORT(exports, log);
  BEITSEG_EXPORT(exports, sign);
  BEITSEG_EXPORT(exports, floor);
  BEITSEG_EXPORT(exports, sigmoid);
  BEITSEG_EXPORT(exports, tanh);
  BEITSEG_EXPORT(exports, isfinite);
  BEITSEG_EXPORT(exports, clamp);
  BEITSEG_EXPORT(exports, where);
  BEITSEG_EXPORT(exports, matmul);
  BEITSEG_EXPORT(exports, linear);
  BEITSEG_EXPORT(exports, sum);
  BEITSEG_EXPORT(exports, mean);
  BEITSEG_EXPORT(exports, max);
  BEITSEG_EXPORT(exports, min);
  BEITSEG_EXPORT(exports, argmax);
  BEITSEG_EXPORT(exports, bincount);
  BEITSEG_EXPORT(exports, addInplace);
  BEITSEG_EXPORT(exports, mulInplace);
  BEITSEG_EXPORT(exports, addcmulInplace);
  BEITSEG_EXPORT(exports, addcdivInplace);
  BEITSEG_EXPORT(exports, copyInplace);
  BEITSEG_EXPORT(exports, fillInplace);
}

}  // namespace beitseg
