// LeNet-5 exactly as the seed article's Python class, layer for layer, with the same parameter
// names (conv1.weight, conv1.bias, ..., fc3.bias) so state_dict keys match PyTorch's. Written
// with ATen's operators rather than torch::nn's modules: the module headers take about 20 s to
// compile, for five layers that hold two tensors each.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace lenet5 {

constexpr int64_t kImageSide = 28;

class LeNet5 {
 public:
  // Initialised as torch.nn's Conv2d and Linear are, from LibTorch's default CPU generator.
  explicit LeNet5(int64_t numClasses);

  int64_t numClasses() const { return numClasses_; }
  at::Tensor forward(const at::Tensor& x);
  void to(const c10::Device& device);
  // Training mode, as torch.nn's train()/eval(): on at construction.
  bool isTraining() const { return training_; }
  void setTraining(bool training) { training_ = training; }
  // The parameters in the state_dict's order and with its names. The tensors are the network's
  // own (handles, not copies): set_data() and mutable_grad() on them change the network.
  const std::vector<std::pair<std::string, at::Tensor>>& namedParameters() const { return parameters_; }

 private:
  const at::Tensor& parameter(size_t index) const { return parameters_[index].second; }
  at::Tensor convolve(size_t layer, const at::Tensor& x, int64_t padding) const;

  int64_t numClasses_;
  bool training_ = true;
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
};

}  // namespace lenet5
