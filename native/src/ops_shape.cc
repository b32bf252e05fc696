// Views, layout, indexing, joining and conversions.
#include "common.h"

namespace beitseg {

// Whether optional argument i was given (present, neither undefined nor null). Kept per file: a
// change to common.h rebuilds every object.
static bool Given(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

BEITSEG_OP(reshape) {
  return TensorHandle::Wrap(env, at::reshape(ArgTensor(info, 0), ArgIntList(info, 1)));
}
BEITSEG_OP(view) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).view(ArgIntList(info, 1)));
}
BEITSEG_OP(permute) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).permute(ArgIntList(info, 1)));
}
BEITSEG_OP(transpose) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).transpose(ArgInt(info, 1), ArgInt(info, 2)));
}
BEITSEG_OP(flatten) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).flatten(ArgInt(info, 1), ArgInt(info, 2)));
}
BEITSEG_OP(unsqueeze) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).unsqueeze(ArgInt(info, 1)));
}
BEITSEG_OP(squeeze) {
  std::optional<int64_t> dim = ArgOptInt(info, 1);
  return TensorHandle::Wrap(env, dim ? ArgTensor(info, 0).squeeze(*dim) : ArgTensor(info, 0).squeeze());
}
BEITSEG_OP(expand) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).expand(ArgIntList(info, 1)));
}
BEITSEG_OP(repeat) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).repeat(ArgIntList(info, 1)));
}

// contiguous(x, 'contiguous' | 'channels_last')
static at::MemoryFormat ParseFormat(const std::string& f) {
  if (f == "contiguous") return at::MemoryFormat::Contiguous;
  if (f == "channels_last") return at::MemoryFormat::ChannelsLast;
  throw std::invalid_argument("unknown memory format '" + f + "' (contiguous, channels_last)");
}
BEITSEG_OP(contiguous) {
  at::MemoryFormat fmt = info.Length() > 1 ? ParseFormat(ArgString(info, 1)) : at::MemoryFormat::Contiguous;
  return TensorHandle::Wrap(env, ArgTensor(info, 0).contiguous(fmt));
}
BEITSEG_OP(isContiguous) {
  at::MemoryFormat fmt = info.Length() > 1 ? ParseFormat(ArgString(info, 1)) : at::MemoryFormat::Contiguous;
  return Napi::Boolean::New(env, ArgTensor(info, 0).is_contiguous(fmt));
}

// slice(x, dim, start, end, step): Python's x[..., start:end:step] on one dim.
BEITSEG_OP(slice) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).slice(ArgInt(info, 1), ArgInt(info, 2), ArgInt(info, 3),
                                                          info.Length() > 4 ? ArgInt(info, 4) : 1));
}
BEITSEG_OP(select) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).select(ArgInt(info, 1), ArgInt(info, 2)));
}
BEITSEG_OP(indexSelect) {
  return TensorHandle::Wrap(env, at::index_select(ArgTensor(info, 0), ArgInt(info, 1), ArgTensor(info, 2)));
}
BEITSEG_OP(gather) {
  return TensorHandle::Wrap(env, at::gather(ArgTensor(info, 0), ArgInt(info, 1), ArgTensor(info, 2)));
}
BEITSEG_OP(maskedFill) {
  return TensorHandle::Wrap(env, at::masked_fill(ArgTensor(info, 0), ArgTensor(info, 1), ArgDouble(info, 2)));
}

BEITSEG_OP(cat) {
  return TensorHandle::Wrap(env, at::cat(ArgTensorList(info, 0), ArgInt(info, 1)));
}
BEITSEG_OP(stack) {
  return TensorHandle::Wrap(env, at::stack(ArgTensorList(info, 0), ArgInt(info, 1)));
}
BEITSEG_OP(split) {
  return WrapList(env, at::split(ArgTensor(info, 0), ArgInt(info, 1), ArgInt(info, 2)));
}
BEITSEG_OP(flip) {
  return TensorHandle::Wrap(env, at::flip(ArgTensor(info, 0), ArgIntList(info, 1)));
}
// pad(x, [left, right, top, bottom, ...], value): F.pad(mode='constant').
BEITSEG_OP(pad) {
  return TensorHandle::Wrap(env, at::constant_pad_nd(ArgTensor(info, 0), ArgIntList(info, 1), ArgDouble(info, 2)));
}

BEITSEG_OP(clone) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).clone());
}
BEITSEG_OP(detach) {
  return TensorHandle::Wrap(env, ArgTensor(info, 0).detach());
}

// to(x, dtype|null, device|null)
BEITSEG_OP(to) {
  at::Tensor t = ArgTensor(info, 0);
  // Both are read before either conversion, so a bad dtype never leaves a half-done copy behind.
  const std::optional<std::string> dtype = Given(info, 1) ? std::optional(ArgString(info, 1)) : std::nullopt;
  const std::optional<std::string> device = Given(info, 2) ? std::optional(ArgString(info, 2)) : std::nullopt;
  if (device) t = t.to(ParseDevice(*device));
  if (dtype) t = t.to(ParseDType(*dtype));
  return TensorHandle::Wrap(env, t);
}

void RegisterShape(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, reshape);
  BEITSEG_EXPORT(exports, view);
  BEITSEG_EXPORT(exports, permute);
  BEITSEG_EXPORT(exports, transpose);
  BEITSEG_EXPORT(exports, flatten);
  BEITSEG_EXPORT(exports, unsqueeze);
  BEITSEG_EXPORT(exports, squeeze);
  BEITSEG_EXPORT(exports, expand);
  BEITSEG_EXPORT(exports, repeat);
  BEITSEG_EXPORT(exports, contiguous);
  BEITSEG_EXPORT(exports, isContiguous);
  BEITSEG_EXPORT(exports, slice);
  BEITSEG_EXPORT(exports, select);
  BEITSEG_EXPORT(exports, indexSelect);
  BEITSEG_EXPORT(exports, gather);
  BEITSEG_EXPORT(exports, maskedFill);
  BEITSEG_EXPORT(exports, cat);
  BEITSEG_EXPORT(exports, stack);
  BEITSEG_EXPORT(exports, split);
  BEITSEG_EXPORT(exports, flip);
  BEITSEG_EXPORT(exports, pad);
  BEITSEG_EXPORT(exports, clone);
  BEITSEG_EXPORT(exports, detach);
  BEITSEG_EXPORT(exports, to);
}

}  // namespace beitseg
