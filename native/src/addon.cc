// beitseg native addon: a thin N-API layer over libtorch. Each op family registers itself.
#include "common.h"

namespace beitseg {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCpuAllocator(env, exports);
  TensorHandle::Init(env, exports);
  RegisterMemory(env, exports);
  RegisterMath(env, exports);
  RegisterNN(env, exports);
  RegisterAttention(env, exports);
  RegisterQuantized(env, exports);
  RegisterShape(env, exports);
  RegisterRuntime(env, exports);
  RegisterOptim(env, exports);
  RegisterDistributed(env, exports);
  RegisterCudaGraph(env, exports);
  RegisterConvWinograd(env, exports);
  return exports;
}

}  // namespace beitseg

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return beitseg::Init(env, exports);
}

NODE_API_MODULE(beitseg, InitAddon)
