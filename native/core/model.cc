#include "model.h"

#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include "errors.h"

namespace lenet5 {

Model::Model(int64_t numClasses, const c10::Device& device) : net_(numClasses), device_(at::kCPU) { to(device); }

void Model::to(const c10::Device& device) {
  net_.to(device);
  device_ = device;
  flatten();
}

// Re-homes every parameter (and gradient) into views of two contiguous buffers. Autograd
// accumulates into an existing gradient in place, so the views stay valid as long as we zero
// the flat gradient buffer instead of resetting gradients to undefined.
void Model::flatten() {
  at::NoGradGuard noGrad;
  auto named = net_.namedParameters();
  slots_.clear();
  int64_t total = 0;
  for (const auto& [name, p] : named) {
    slots_.push_back({name, p.sizes().vec(), total, p.numel()});
    total += p.numel();
  }
  auto options = at::TensorOptions().dtype(at::kFloat).device(device_);
  flatParameters_ = at::empty({total}, options);
  flatGradients_ = at::zeros({total}, options);
  size_t i = 0;
  for (auto& [name, p] : named) {
    const auto& slot = slots_[i++];
    auto paramView = flatParameters_.narrow(0, slot.offset, slot.numel).view(slot.shape);
    paramView.copy_(p);
    p.set_data(paramView);
    p.mutable_grad() = flatGradients_.narrow(0, slot.offset, slot.numel).view(slot.shape);
  }
}

std::vector<std::pair<std::string, at::Tensor>> Model::stateDict() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& slot : slots_) {
    out.emplace_back(slot.name,
                     flatParameters_.narrow(0, slot.offset, slot.numel).view(slot.shape).detach().to(at::kCPU).clone());
  }
  return out;
}

void Model::setParameter(size_t slot, const at::Tensor& values) {
  at::NoGradGuard noGrad;
  const auto& s = slots_.at(slot);
  flatParameters_.narrow(0, s.offset, s.numel).copy_(values.reshape({-1}));
}
engine::Engine& Model::fusedEngine() {
  if (!fusedEngine_) {
    // The engine reads parameters at fixed offsets of the flat buffer: check they are these.
    const engine::ParameterLayout layout(static_cast<int>(numClasses()));
    const int64_t expected[] = {layout.conv1Weight, layout.conv1Bias, layout.conv2Weight, layout.conv2Bias,
                                layout.fc1Weight,   layout.fc1Bias,   layout.fc2Weight,   layout.fc2Bias,
                                layout.fc3Weight,   layout.fc3Bias};
    bool matches = slots_.size() == std::size(expected) && flatParameters_.numel() == layout.total;
    for (size_t i = 0; matches && i < slots_.size(); ++i) matches = slots_[i].offset == expected[i];
    if (!matches) {
      throw NativeError(
          "ERR_LENET5_INTERNAL",
          "The fused engine's parameter layout does not match the model's. Use engine 'libtorch' and report this.");
    }
    fusedEngine_ = std::make_unique<engine::Engine>(static_cast<int>(numClasses()));
  }
  return *fusedEngine_;
}

}  // namespace lenet5
