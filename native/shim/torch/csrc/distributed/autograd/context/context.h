// Stand-in for a libtorch header that Debian's libtorch-dev 1.13 does not ship but c10d's
// reducer.hpp includes. The Reducer only holds a shared_ptr to this context (and checks one
// type alias), so declaring those is enough to call the Reducer that libtorch_cpu.so exports.
// The build puts this folder after libtorch's own include folders: a libtorch that ships the
// real header uses it instead.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
